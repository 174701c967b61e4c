console.log('uvit cli placeholder', process.argv.slice(2));
